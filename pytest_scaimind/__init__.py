"""pytest_scaimind: benchmark quality gates for pytest."""
