"""Stripe: access plans, checkout, webhooks, entitlements. Arrives with the billing issue."""
