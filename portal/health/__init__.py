"""GET /health for load balancers and monitors."""
