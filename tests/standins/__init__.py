"""Local stand-ins for paid SaaS APIs (Twilio, OpenAI-compatible chat), speaking their wire formats."""
