"""Kickoff forms: definitions, the builder in the staff area, and the public render/submit
/embed blueprint. Arrives with the kickoff forms issue."""
