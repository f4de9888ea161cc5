"""One module per rule; ``peftfix.source.registry`` lists them."""
