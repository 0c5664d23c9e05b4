"""Small value primitives shared by every layer: regex classes, phone numbers."""
