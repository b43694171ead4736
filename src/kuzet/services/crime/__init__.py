"""Crime analytics: registered offences joined with cameras and places."""
