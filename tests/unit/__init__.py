"""Fast, table-driven unit tests of litegate's pure parts: no servers, no sockets, no sleeps."""
