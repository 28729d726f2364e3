"""The live classroom: exact presence, the completion gate, attendance, the room's lifecycle."""
