"""The landing page: current elections."""
