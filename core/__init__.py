"""The floor every other package stands on: configuration, database, tenancy, identity,
permissions, audit, jobs and mail. Nothing in here imports a blueprint package."""
