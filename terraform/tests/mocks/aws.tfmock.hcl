# Shared mock values for `mock_provider "aws"` in every terraform test: AWS is mocked, nothing is
# created. Data sources get realistic values (empty AZ lists and random account ids would break
# the configuration), and ARNs/URLs look real so that provider-side validation accepts them.
mock_data "aws_availability_zones" {
  defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
}

mock_data "aws_caller_identity" {
  defaults = { account_id = "111122223333", arn = "arn:aws:iam::111122223333:user/mock", user_id = "MOCK" }
}

mock_data "aws_region" {
  defaults = { name = "eu-west-1", id = "eu-west-1" }
}

mock_data "aws_partition" {
  defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
}

mock_resource "aws_eks_cluster" {
  defaults = {
    arn      = "arn:aws:eks:eu-west-1:111122223333:cluster/mock"
    identity = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/MOCKISSUER" }] }]
  }
}

mock_resource "aws_iam_openid_connect_provider" {
  defaults = { arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/MOCKISSUER" }
}

mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::111122223333:role/mock" }
}

mock_resource "aws_kms_key" {
  defaults = { arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000" }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:eu-west-1:111122223333:log-group:mock" }
}

mock_resource "aws_db_instance" {
  defaults = {
    master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:mock", kms_key_id = "k", secret_status = "active" }]
  }
}

mock_resource "aws_launch_template" {
  defaults = { id = "lt-0123456789abcdef0", latest_version = 1 }
}

mock_resource "aws_security_group" {
  defaults = { id = "sg-0123456789abcdef0", arn = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0123456789abcdef0" }
}

mock_resource "aws_ecr_repository" {
  defaults = { arn = "arn:aws:ecr:eu-west-1:111122223333:repository/mock", repository_url = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/mock" }
}
