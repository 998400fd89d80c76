"""SSTables: immutable sorted files of partitions. format.py owns the layout; writer.py and reader.py share it."""
