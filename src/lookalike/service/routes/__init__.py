"""One router per resource: images, checks, review pairs, health."""
