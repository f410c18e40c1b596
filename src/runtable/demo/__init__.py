"""The demo: a mock proposal, a sample context file, and runs processed end to end."""
