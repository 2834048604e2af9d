"""Fleet config pushes: signed, versioned documents, their trust, ordering and merging.

The agent layer (``edge_agent.agent.fleet_apply``) delivers documents and applies them; the
operator CLI (``edge_agent.cli.fleet``) signs and pushes them. Everything here is pure or
touches only the state directory and the model files a document names.
"""
