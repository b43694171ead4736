"""The watching capability."""
