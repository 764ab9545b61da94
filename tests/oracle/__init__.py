"""Independent reference evaluators used to cross-check the engine in property tests."""
