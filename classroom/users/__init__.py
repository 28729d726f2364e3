"""Users as the tutoring platform's tokens describe them."""
