"""One construct per concern of the stack; `infrastructure.stack` composes them."""
