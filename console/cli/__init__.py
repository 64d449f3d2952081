"""The `ggen` command line. Each command group lives in its own module and is imported only when used."""
