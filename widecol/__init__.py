"""widecol: a Cassandra-family wide-column store in Python, on Trio."""

__version__ = "0.1.0"
