"""Sample music and the demo: ``synth`` makes a library of synthesized clips in distinct styles
(for the demo, tests and benchmarks: it proves plumbing, never quality); ``demo`` is the
end-to-end tour behind `musicindex demo`."""
