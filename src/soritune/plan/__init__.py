"""Memory planner: one training step traced on fake tensors -> peak GPU memory (`soritune plan`)."""
