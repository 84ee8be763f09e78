"""What every stage needs: validated parameters (params), atomic outputs (io), the stage wrapper that turns a
UserError into one line (stage, errors). Every stage depends on this whole folder in dvc.yaml."""
