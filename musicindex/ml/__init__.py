"""Batch training over the stored tables: classifiers, clustering, networks, the registry, backfill.

Kept light on purpose: nothing here imports TensorFlow (or scikit-learn) at import time.
Modules:

* ``data``       -- reading the training set (features, spectrogram patches, labels) from the database
* ``artifacts``  -- (de)serialising models to bytes, sha256
* ``classical``  -- KNN and logistic regression (scikit-learn pipelines + GridSearchCV)
* ``nets``       -- the Keras ANN (43 features) and CNN (log-mel patches); TensorFlow imported lazily
* ``clustering`` -- K-Means, Birch, Gaussian mixture with a silhouette sweep over k
* ``registry``   -- model versions: promote, rollback, active versions, checked artifact loads
* ``inference``  -- loading versions (cached) and applying them to features / spectrograms
* ``backfill``   -- predictions, clusters and embeddings for every indexed track; HNSW indexes
* ``training``   -- ``train(db, ...)``: one training run end to end
"""
