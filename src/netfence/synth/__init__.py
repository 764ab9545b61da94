"""Policy synthesis (pure): zone models and intents -> policies, verified by the engine."""
