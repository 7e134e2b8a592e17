"""A user's alerts: the notifications list and bell, and linking the Telegram alert bot."""
