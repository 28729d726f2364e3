"""Messages: one conversation per tutor–student pair, read by the student's linked parents."""
