"""From a validated request to RQ jobs, and from RQ jobs back to the API's views."""
