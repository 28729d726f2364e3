"""The ``/classroom`` Socket.IO namespace: wire schemas and event handlers."""
