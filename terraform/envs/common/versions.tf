# Shared by every environment root (each envs/<env>/ links this file): one provider pin.
terraform {
  required_version = ">= 1.10"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Project = "churn-mlops", ManagedBy = "terraform" }
  }
}
