"""redirectory: HTTP redirection for REST APIs, correct, fast and visible."""
