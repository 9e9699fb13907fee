"""tidelog client."""
