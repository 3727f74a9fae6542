"""One module per delivery channel: SMS (Twilio), e-mail (SMTP), signed webhooks, in-app push."""
