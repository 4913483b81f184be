"""The in-process API for route tests: no Ray, a real store on a temporary SQLite file."""
