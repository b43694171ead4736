"""Plain domain models and rules. No I/O here: nothing in this package touches a database, a file or a socket."""
