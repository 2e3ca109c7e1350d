"""The other side of each wire: chatbot workspaces Ticketer talks to. No business rules here."""
