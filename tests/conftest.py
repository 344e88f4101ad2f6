import sys


def pytest_ignore_collect(collection_path, config):
    # tests/mpi runs under mpirun (see test_mpi_suites.py), never in the plain pytest process
    if collection_path.name == "mpi" and not config.getoption("--with-mpi", default=False):
        return True
    return None
