"""Every state change of the desk goes through one function in these modules.

A service takes ids or plain values and the acting user, checks the rule, records the event,
may flush(), and does not commit: the caller owns the transaction.
"""
