"""HTTP API families: routers, request/response shapes and error mapping."""
