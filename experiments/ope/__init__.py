"""Off-policy evaluation experiments: log collection, target configs, the validation study."""
