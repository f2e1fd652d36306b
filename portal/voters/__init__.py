"""The voter roll: search at a million rows, edit, import, export."""
