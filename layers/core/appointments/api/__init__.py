"""Request and response models of the HTTP APIs: what the OpenAPI document is generated from."""
