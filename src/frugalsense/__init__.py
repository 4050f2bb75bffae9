"""frugalsense: vision, document and speech AI on a cheap CPU box, with a cost receipt on every answer."""
