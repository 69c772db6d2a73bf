"""Constants shared by the Azure OpenAI tests."""

AZURE_KEY = "azure-test-key-0000000001"
