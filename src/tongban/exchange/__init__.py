"""Everything that crosses a jurisdiction's border: outbox, inbox, dispatcher."""
