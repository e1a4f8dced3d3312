"""The CRM domain (contacts, companies, circles, tags, notes, tasks, events, import/export):
models and services with no HTTP in them. Arrives with the CRM core issue."""
