# AWS is mocked (mock_provider): checks the trust GitHub's tokens would meet, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name                = "churn-prod-github-deploy"
  repository          = "acme/churn-mlops"
  environment         = "prod"
  ecr_repository_arns = ["arn:aws:ecr:eu-west-1:111122223333:repository/churn-prod/components"]
}

run "trust_is_this_repository_and_environment_only" {
  assert {
    condition = jsondecode(output.trust_policy).Statement[0].Condition == {
      StringEquals = {
        "token.actions.githubusercontent.com:sub" = "repo:acme/churn-mlops:environment:prod"
        "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
      }
    }
    error_message = "Only jobs of this repository running in this GitHub environment may assume the deploy role (StringEquals, no wildcards)."
  }
  assert {
    condition     = aws_iam_openid_connect_provider.github[0].url == "https://token.actions.githubusercontent.com"
    error_message = "The role must federate GitHub's OIDC issuer."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.deploy.policy).Statement :
      alltrue([for a in flatten([s.Action]) : startswith(a, "ecr:")]) && (s.Resource != "*" || s.Action == "ecr:GetAuthorizationToken")
    ])
    error_message = "The deploy role may only push images to its own repositories."
  }
}

run "one_provider_per_account" {
  variables {
    existing_provider_arn = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
  }
  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0 && output.provider_arn == var.existing_provider_arn
    error_message = "With an existing provider, reuse it instead of creating a second one."
  }
}

run "wildcard_repository_rejected" {
  command = plan
  variables {
    repository = "acme/*"
  }
  expect_failures = [var.repository]
}
