"""Local compute: replicas are processes on this machine, supervised by the server."""
