"""Running litegate: the command line, offline commands and the daemon's life cycle."""
