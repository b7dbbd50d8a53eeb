"""Reading (and writing) networks of other frameworks."""
