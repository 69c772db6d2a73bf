"""Built-in provider adapters. Nothing here is imported until a provider is first used."""
